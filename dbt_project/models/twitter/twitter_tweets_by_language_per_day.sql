-- Grain: one row per UTC day and tweet language (the API's lang code; "und" when unknown).
-- Each post once (fct_tweets: no reference-only tweets, one version per edited post).
select
    date,
    coalesce(lang, 'und') as lang,
    count(*)::bigint as tweet_count,
    count(*) filter (where is_retweet)::bigint as retweet_count,
    count(distinct author_id)::bigint as distinct_authors
from {{ ref('fct_tweets') }}
group by date, coalesce(lang, 'und')
