-- One title across IMDB, MovieLens and TMDB, keyed by the IMDB id (tconst), which MovieLens
-- links and TMDB both carry. Titles known only to TMDB without an IMDB id are left out.
with imdb as (
    select t.tconst as title_id, t.title_type, t.primary_title, t.original_title, t.start_year,
           t.end_year, t.runtime_minutes, t.is_adult
    from {{ source('movies', 'imdb_titles') }} as t
),
links as (
    select imdb_id as title_id, movie_id as movielens_movie_id, tmdb_id
    from {{ source('movies', 'movielens_links') }}
    qualify row_number() over (partition by imdb_id order by movie_id) = 1
),
ml as (
    select movie_id, title, year from {{ source('movies', 'movielens_movies') }}
),
tmdb as (
    select imdb_id as title_id, tmdb_id, title, release_year, runtime_minutes, budget, revenue
    from {{ source('movies', 'tmdb_movies') }}
    where imdb_id is not null
    qualify row_number() over (partition by imdb_id order by vote_count desc nulls last, tmdb_id) = 1
),
tv as (
    select imdb_id as title_id, tmdb_id, name, first_air_year
    from {{ source('movies', 'tmdb_tv') }}
    where imdb_id is not null
    qualify row_number() over (partition by imdb_id order by vote_count desc nulls last, tmdb_id) = 1
),
ids as (
    select title_id from imdb
    union select title_id from links
    union select title_id from tmdb
    union select title_id from tv
)
select
    ids.title_id,
    coalesce(imdb.title_type, case when tv.tmdb_id is not null then 'tvSeries' else 'movie' end)
        as title_type,
    coalesce(imdb.primary_title, tmdb.title, tv.name, ml.title) as title,
    coalesce(imdb.original_title, imdb.primary_title, tmdb.title, tv.name, ml.title) as original_title,
    cast(coalesce(imdb.start_year, tmdb.release_year, tv.first_air_year, ml.year) as integer) as year,
    cast(coalesce(imdb.start_year, tmdb.release_year, tv.first_air_year, ml.year) // 10 * 10 as integer)
        as decade,
    imdb.end_year,
    coalesce(imdb.runtime_minutes, tmdb.runtime_minutes) as runtime_minutes,
    coalesce(imdb.is_adult, false) as is_adult,
    links.movielens_movie_id,
    coalesce(tmdb.tmdb_id, tv.tmdb_id, links.tmdb_id) as tmdb_id,
    tmdb.budget,
    tmdb.revenue,
    imdb.title_id is not null as in_imdb,
    links.title_id is not null as in_movielens,
    (tmdb.title_id is not null or tv.title_id is not null) as in_tmdb
from ids
left join imdb on imdb.title_id = ids.title_id
left join links on links.title_id = ids.title_id
left join ml on ml.movie_id = links.movielens_movie_id
left join tmdb on tmdb.title_id = ids.title_id
left join tv on tv.title_id = ids.title_id
