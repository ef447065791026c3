-- Grain: one row per post collected directly (search or stream), each post counted once:
-- tweets seen only through a reference (includes.tweets) are left out, and of the versions
-- of an edited post (one id each, linked by edit_of) the newest collected one stands for it.
with direct as (
    select
        *,
        coalesce(edit_of, id) as edit_chain_id
    from {{ source('twitter', 'twitter_tweets') }}
    where not coalesce(seen_via_reference, false)
),

versions as (
    select
        *,
        count(*) over (partition by edit_chain_id) as version_count,
        row_number() over (partition by edit_chain_id order by id::bigint desc) as version_rank
    from direct
)

select
    id, edit_chain_id, version_count::bigint as version_count, text, created_at, date,
    author_id, conversation_id, lang, source, collected_via, is_retweet, is_reply, is_quote,
    retweeted_id, replied_to_id, quoted_id, retweet_count, reply_count, like_count,
    quote_count, bookmark_count, impression_count, place_id, country, country_code
from versions
where version_rank = 1
