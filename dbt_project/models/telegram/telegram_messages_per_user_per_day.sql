-- Grain: one row per chat, UTC day and sender.
select
    chat_id,
    date,
    user_id,
    any_value(user_first_name) as user_first_name,
    any_value(user_username) as user_username,
    bool_or(user_is_bot) as user_is_bot,
    count(*) as message_count
from {{ source('telegram', 'telegram_messages') }}
where user_id is not null
group by chat_id, date, user_id
