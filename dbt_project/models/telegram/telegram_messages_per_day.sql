-- Grain: one row per chat and UTC day.
select
    chat_id,
    date,
    any_value(chat_title) as chat_title,
    count(*) as message_count,
    count(distinct user_id) as active_users
from {{ source('telegram', 'telegram_messages') }}
group by chat_id, date
