-- Per decade and genre: how many movies, their share of the decade, and their IMDB ratings.
with movies as (
    select title_id, decade from {{ ref('dim_title') }}
    where title_type = 'movie' and decade is not null
),
per_decade as (select decade, count(*) as decade_titles from movies group by decade),
imdb as (select title_id, rating, votes from {{ ref('fct_rating') }} where source = 'imdb')
select
    m.decade,
    g.genre_id,
    g.genre_name,
    count(*) as title_count,
    round(count(*) / any_value(d.decade_titles), 4) as share_of_decade,
    -- IMDB ratings have one decimal: averaged exactly as decimals, a parallel sum's order
    -- cannot move a value across a rounding boundary between two builds.
    round(avg(cast(i.rating as decimal(18, 1))), 2) as avg_imdb_rating,
    cast(coalesce(sum(i.votes), 0) as bigint) as imdb_votes
from movies as m
join {{ ref('bridge_title_genre') }} as g on g.title_id = m.title_id
join per_decade as d on d.decade = m.decade
left join imdb as i on i.title_id = m.title_id
group by m.decade, g.genre_id, g.genre_name
