-- One row per IMDB person (nconst), with the TMDB person id when TMDB credits name exactly one
-- TMDB person by the same name.
with tmdb_people as (
    select name, min(person_id) as tmdb_person_id
    from {{ source('movies', 'tmdb_credits') }}
    group by name
    having count(distinct person_id) = 1
),
credits as (
    select nconst, count(distinct tconst) as principal_title_count
    from {{ source('movies', 'imdb_principals') }}
    group by nconst
)
select
    n.nconst as person_id,
    n.primary_name as name,
    n.birth_year,
    n.death_year,
    n.primary_profession as professions,
    n.known_for_titles,
    coalesce(c.principal_title_count, 0) as principal_title_count,
    p.tmdb_person_id
from {{ source('movies', 'imdb_names') }} as n
left join credits as c on c.nconst = n.nconst
left join tmdb_people as p on p.name = n.primary_name
