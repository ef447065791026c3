-- Grain: one row per chat, UTC day and sender, over text messages only.
select
    chat_id,
    date,
    user_id,
    any_value(user_first_name) as user_first_name,
    count(*) as text_message_count,
    avg(text_length) as avg_text_length
from {{ source('telegram', 'telegram_messages') }}
where message_type = 'text' and user_id is not null
group by chat_id, date, user_id
