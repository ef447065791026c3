-- Grain: one row per author, the 100 authors with the most tweets in the lake (each post
-- once: fct_tweets).
with per_author as (
    select
        author_id,
        count(*)::bigint as tweet_count,
        count(*) filter (where is_retweet)::bigint as retweet_count,
        count(*) filter (where is_reply)::bigint as reply_count,
        min(created_at) as first_tweet_at,
        max(created_at) as last_tweet_at
    from {{ ref('fct_tweets') }}
    where author_id is not null
    group by author_id
),

ranked as (
    select
        per_author.*,
        users.username,
        users.name,
        users.followers_count,
        row_number() over (order by per_author.tweet_count desc, per_author.author_id) as author_rank
    from per_author
    left join {{ source('twitter', 'twitter_users') }} as users on users.id = per_author.author_id
)

select
    author_rank, author_id, username, name, followers_count, tweet_count, retweet_count,
    reply_count, first_tweet_at, last_tweet_at
from ranked
where author_rank <= 100
