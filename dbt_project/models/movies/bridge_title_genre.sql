-- Title x genre, genres named the same way across sources: TMDB's "Science Fiction" is IMDB's
-- "Sci-Fi", MovieLens "Children" is "Family", TMDB's series genres "Action & Adventure" and
-- "Sci-Fi & Fantasy" count as both; MovieLens "IMAX" is a format, not a genre.
with raw_genres as (
    select tconst as title_id, unnest(genres) as genre, 'imdb' as source
    from {{ source('movies', 'imdb_titles') }}
    union all
    select l.imdb_id, unnest(m.genres), 'movielens'
    from {{ source('movies', 'movielens_movies') }} as m
    join {{ source('movies', 'movielens_links') }} as l on l.movie_id = m.movie_id
    union all
    select imdb_id, unnest(genres), 'tmdb'
    from {{ source('movies', 'tmdb_movies') }} where imdb_id is not null
    union all
    select imdb_id, unnest(genres), 'tmdb'
    from {{ source('movies', 'tmdb_tv') }} where imdb_id is not null
),
canonical as (
    select title_id, source, unnest(case genre
        when 'Science Fiction' then ['Sci-Fi']
        when 'Children' then ['Family']
        when 'Action & Adventure' then ['Action', 'Adventure']
        when 'Sci-Fi & Fantasy' then ['Sci-Fi', 'Fantasy']
        when 'War & Politics' then ['War']
        when 'IMAX' then []
        else [genre] end) as genre_name
    from raw_genres
)
-- One row per (title_id, genre_id) by construction, so dim_genre counts rows, not distinct ids.
select
    c.title_id,
    lower(replace(c.genre_name, ' ', '-')) as genre_id,
    min(c.genre_name) as genre_name,
    bool_or(c.source = 'imdb') as from_imdb,
    bool_or(c.source = 'movielens') as from_movielens,
    bool_or(c.source = 'tmdb') as from_tmdb
from canonical as c
join {{ ref('dim_title') }} as t on t.title_id = c.title_id
group by c.title_id, genre_id
