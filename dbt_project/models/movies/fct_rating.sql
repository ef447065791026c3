-- One row per (title, source): the rating each source gives a title and how many votes back it.
-- MovieLens stars (0.5 to 5) are doubled into rating_10 so the three sources compare.
with imdb as (
    select tconst as title_id, 'imdb' as source, average_rating as rating, 10 as rating_scale,
           average_rating as rating_10, num_votes as votes
    from {{ source('movies', 'imdb_ratings') }}
),
movielens as (
    select l.imdb_id as title_id, 'movielens' as source, avg(r.rating) as rating,
           5 as rating_scale, avg(r.rating) * 2 as rating_10, count(*) as votes
    from {{ source('movies', 'movielens_ratings') }} as r
    join {{ source('movies', 'movielens_links') }} as l on l.movie_id = r.movie_id
    group by l.imdb_id
),
tmdb as (
    select imdb_id as title_id, 'tmdb' as source, vote_average as rating, 10 as rating_scale,
           vote_average as rating_10, vote_count as votes
    from {{ source('movies', 'tmdb_movies') }}
    where imdb_id is not null and vote_count > 0
    qualify row_number() over (partition by imdb_id order by vote_count desc, tmdb_id) = 1
),
tmdb_tv as (
    select imdb_id, 'tmdb', vote_average, 10, vote_average, vote_count
    from {{ source('movies', 'tmdb_tv') }}
    where imdb_id is not null and vote_count > 0
    qualify row_number() over (partition by imdb_id order by vote_count desc, tmdb_id) = 1
),
all_ratings as (
    select * from imdb
    union all select * from movielens
    union all select * from tmdb
    union all select * from tmdb_tv
)
select r.title_id, r.source, cast(r.rating as double) as rating, r.rating_scale,
       cast(r.rating_10 as double) as rating_10, cast(r.votes as bigint) as votes
from all_ratings as r
join {{ ref('dim_title') }} as t on t.title_id = r.title_id
qualify row_number() over (partition by r.title_id, r.source order by r.votes desc) = 1
