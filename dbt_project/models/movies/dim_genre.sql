-- One row per genre, named the same way across IMDB, MovieLens and TMDB.
select
    genre_id,
    min(genre_name) as genre_name,
    count(distinct title_id) as title_count,
    count(distinct title_id) filter (where from_imdb) as imdb_title_count,
    count(distinct title_id) filter (where from_movielens) as movielens_title_count,
    count(distinct title_id) filter (where from_tmdb) as tmdb_title_count
from {{ ref('bridge_title_genre') }}
group by genre_id
