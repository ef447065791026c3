-- Titles rated on both IMDB and MovieLens: MovieLens stars doubled to the 10-point scale, the
-- difference, and whether the two audiences agree (within one point).
with imdb as (select title_id, rating, votes from {{ ref('fct_rating') }} where source = 'imdb'),
ml as (select title_id, rating, rating_10, votes from {{ ref('fct_rating') }} where source = 'movielens')
select
    t.title_id,
    t.title,
    t.year,
    imdb.rating as imdb_rating,
    imdb.votes as imdb_votes,
    round(ml.rating, 4) as movielens_rating,
    ml.votes as movielens_ratings,
    round(ml.rating_10, 4) as movielens_rating_10,
    round(imdb.rating - ml.rating_10, 4) as difference,
    round(abs(imdb.rating - ml.rating_10), 4) as abs_difference,
    case
        when abs(imdb.rating - ml.rating_10) <= 1 then 'agree'
        when imdb.rating > ml.rating_10 then 'imdb higher'
        else 'movielens higher'
    end as agreement
from imdb
join ml on ml.title_id = imdb.title_id
join {{ ref('dim_title') }} as t on t.title_id = imdb.title_id
