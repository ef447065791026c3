-- The MovieLens tags used most (normalised: lower case, trimmed), with how many movies and
-- distinct users they cover.
with counts as (
    select tag, sum(n_applications) as applications, count(distinct movie_id) as movie_count
    from {{ source('movies', 'movielens_tag_counts') }}
    group by tag
),
users as (
    select tag, count(distinct user_id) as user_count
    from {{ source('movies', 'movielens_tags') }}
    group by tag
)
select
    row_number() over (order by c.applications desc, c.movie_count desc, c.tag) as rank,
    c.tag,
    cast(c.applications as bigint) as applications,
    c.movie_count,
    coalesce(u.user_count, 0) as user_count
from counts as c
left join users as u on u.tag = c.tag
