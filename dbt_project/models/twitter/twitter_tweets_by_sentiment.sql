-- Grain: one row per sentiment label (the streaming-sentiment dashboard's count per label).
-- Every label is present, with 0 when no tweet has it, so a dashboard always shows three
-- numbers. Each post once: the sentiment of the version fct_tweets counts.
with labels as (
    select * from (values ('Negative'), ('Neutral'), ('Positive')) as l(sentiment_label)
),

counts as (
    select s.sentiment_label, count(*) as tweet_count
    from {{ source('twitter', 'twitter_sentiment') }} as s
    inner join {{ ref('fct_tweets') }} as t on t.id = s.id
    group by s.sentiment_label
)

select
    labels.sentiment_label::varchar as sentiment_label,
    coalesce(counts.tweet_count, 0)::bigint as tweet_count
from labels
left join counts using (sentiment_label)
