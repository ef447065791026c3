-- Grain: one row per UTC day and country, for tweets that carry a place (geo-tagged only),
-- each post once (fct_tweets).
select
    date,
    country_code,
    any_value(country) as country,
    count(*)::bigint as tweet_count,
    count(distinct place_id)::bigint as distinct_places
from {{ ref('fct_tweets') }}
where country_code is not null
group by date, country_code
