-- Grain: one row per UTC day and country, for tweets that carry a place (geo-tagged only).
select
    date,
    country_code,
    any_value(country) as country,
    count(*)::bigint as tweet_count,
    count(distinct place_id)::bigint as distinct_places
from {{ source('twitter', 'tweets') }}
where country_code is not null
group by date, country_code
