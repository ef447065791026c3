-- Grain: one row per sentiment label (the streaming-sentiment dashboard's count per label). Every label is present,
-- with 0 when no tweet has it, so a dashboard always shows three numbers.
with labels as (
    select * from (values ('Negative'), ('Neutral'), ('Positive')) as l(sentiment_label)
),

counts as (
    select sentiment_label, count(*) as tweet_count
    from {{ source('twitter', 'tweet_sentiment') }}
    group by sentiment_label
)

select
    labels.sentiment_label::varchar as sentiment_label,
    coalesce(counts.tweet_count, 0)::bigint as tweet_count
from labels
left join counts using (sentiment_label)
