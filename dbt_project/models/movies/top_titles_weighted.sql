-- IMDB's weighted rating: WR = v / (v + m) * R + m / (v + m) * C, where R and v are a movie's
-- rating and votes, m the minimum votes to be listed and C the mean rating of listed movies.
{% set min_votes = var('movies_min_votes', 25000) %}
with rated as (
    select t.title_id, t.title, t.year, r.rating, r.votes
    from {{ ref('fct_rating') }} as r
    join {{ ref('dim_title') }} as t on t.title_id = r.title_id
    where r.source = 'imdb' and t.title_type = 'movie' and r.votes >= {{ min_votes }}
),
mean as (select avg(rating) as c from rated)
select
    row_number() over (order by weighted_rating desc, votes desc, title_id) as rank,
    *
from (
    select
        rated.title_id, rated.title, rated.year, rated.rating, rated.votes,
        {{ min_votes }} as min_votes,
        round(mean.c, 4) as mean_rating,
        round(rated.votes / (rated.votes + {{ min_votes }}) * rated.rating
              + {{ min_votes }} / (rated.votes + {{ min_votes }}) * mean.c, 4) as weighted_rating
    from rated cross join mean
)
qualify rank <= {{ var('movies_top_titles', 250) }}
