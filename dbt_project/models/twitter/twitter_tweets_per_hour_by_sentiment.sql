-- Grain: one row per UTC hour and sentiment label that has tweets (each post once).
select
    date_trunc('hour', timezone('UTC', s.created_at))::timestamp as hour,
    s.sentiment_label::varchar as sentiment_label,
    count(*)::bigint as tweet_count
from {{ source('twitter', 'twitter_sentiment') }} as s
inner join {{ ref('fct_tweets') }} as t on t.id = s.id
group by 1, 2
