-- Grain: one row per UTC day and hashtag, the 10 most used hashtags of each day, in the
-- posts fct_tweets counts (each post once).
with per_day as (
    select
        h.date,
        h.tag_lower as hashtag,
        count(*)::bigint as tweet_count,
        count(distinct h.tweet_id)::bigint as distinct_tweets
    from {{ source('twitter', 'twitter_hashtags') }} as h
    inner join {{ ref('fct_tweets') }} as t on t.id = h.tweet_id
    group by h.date, h.tag_lower
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
