-- One row per genre, named the same way across IMDB, MovieLens and TMDB. bridge_title_genre has
-- one row per (title, genre), so counting its rows counts titles: no distinct aggregate, whose
-- per-genre sets of title ids would grow with the catalogue.
select
    genre_id,
    min(genre_name) as genre_name,
    count(*) as title_count,
    count(*) filter (where from_imdb) as imdb_title_count,
    count(*) filter (where from_movielens) as movielens_title_count,
    count(*) filter (where from_tmdb) as tmdb_title_count
from {{ ref('bridge_title_genre') }}
group by genre_id
