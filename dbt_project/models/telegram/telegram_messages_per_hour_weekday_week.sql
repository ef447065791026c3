-- Grain: one row per chat, ISO year and week, ISO weekday (1 = Monday) and UTC hour.
select
    chat_id,
    cast(isoyear(sent_at) as integer) as iso_year,
    cast(weekofyear(sent_at) as integer) as iso_week,
    cast(isodow(sent_at) as integer) as iso_weekday,
    cast(hour(sent_at) as integer) as hour,
    count(*) as message_count
from {{ source('telegram', 'telegram_messages') }}
group by all
