-- The Action and Adventure theme: per release year, how many such movies, how they
-- are rated on each source, and what they cost and earned (TMDB budget and revenue).
with themed as (
    select
        title_id,
        bool_or(genre_name = 'Action') as is_action,
        bool_or(genre_name = 'Adventure') as is_adventure
    from {{ ref('bridge_title_genre') }}
    where genre_name in ('Action', 'Adventure')
    group by title_id
),
ratings as (
    select
        title_id,
        max(rating) filter (where source = 'imdb') as imdb_rating,
        max(votes) filter (where source = 'imdb') as imdb_votes,
        max(rating) filter (where source = 'movielens') as movielens_rating,
        max(votes) filter (where source = 'movielens') as movielens_ratings,
        max(rating) filter (where source = 'tmdb') as tmdb_rating
    from {{ ref('fct_rating') }}
    group by title_id
)
select
    t.year,
    count(*) as title_count,
    count(*) filter (where th.is_action) as action_count,
    count(*) filter (where th.is_adventure) as adventure_count,
    count(*) filter (where th.is_action and th.is_adventure) as action_and_adventure_count,
    -- IMDB ratings have one decimal: averaged exactly as decimals (as genre_trends_by_decade),
    -- so the order of a parallel sum cannot move a value across a rounding boundary.
    round(avg(cast(r.imdb_rating as decimal(18, 1))), 2) as avg_imdb_rating,
    cast(coalesce(sum(r.imdb_votes), 0) as bigint) as imdb_votes,
    round(avg(r.movielens_rating), 2) as avg_movielens_rating,
    cast(coalesce(sum(r.movielens_ratings), 0) as bigint) as movielens_ratings,
    round(avg(r.tmdb_rating), 2) as avg_tmdb_rating,
    count(*) filter (where t.budget is not null and t.revenue is not null) as titles_with_financials,
    cast(sum(t.budget) filter (where t.revenue is not null) as bigint) as total_budget,
    cast(sum(t.revenue) filter (where t.budget is not null) as bigint) as total_revenue,
    round((sum(t.revenue) filter (where t.budget is not null)
           - sum(t.budget) filter (where t.revenue is not null))
          / nullif(sum(t.budget) filter (where t.revenue is not null), 0), 4) as roi
from themed as th
join {{ ref('dim_title') }} as t on t.title_id = th.title_id
left join ratings as r on r.title_id = th.title_id
where t.title_type = 'movie' and t.year is not null
group by t.year
