-- Grain: one row per UTC day and hashtag, the 10 most used hashtags of each day.
with per_day as (
    select
        date,
        tag_lower as hashtag,
        count(*)::bigint as tweet_count,
        count(distinct tweet_id)::bigint as distinct_tweets
    from {{ source('twitter', 'tweet_hashtags') }}
    group by date, tag_lower
),

ranked as (
    select
        *,
        row_number() over (partition by date order by tweet_count desc, hashtag) as day_rank
    from per_day
)

select date, day_rank, hashtag, tweet_count, distinct_tweets
from ranked
where day_rank <= 10
