-- Grain: one row per UTC day and tweet language (the API's lang code; "und" when unknown).
select
    date,
    coalesce(lang, 'und') as lang,
    count(*)::bigint as tweet_count,
    count(*) filter (where is_retweet)::bigint as retweet_count,
    count(distinct author_id)::bigint as distinct_authors
from {{ source('twitter', 'tweets') }}
group by date, coalesce(lang, 'und')
