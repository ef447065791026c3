-- Grain: one row per UTC hour and sentiment label that has tweets.
select
    date_trunc('hour', timezone('UTC', created_at))::timestamp as hour,
    sentiment_label::varchar as sentiment_label,
    count(*)::bigint as tweet_count
from {{ source('twitter', 'tweet_sentiment') }}
group by 1, 2
