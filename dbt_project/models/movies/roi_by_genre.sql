-- Return on investment per genre, over movies whose TMDB budget and revenue are both known:
-- ROI = (revenue - budget) / budget, for the genre's totals and per movie (median, mean).
with financials as (
    select title_id, budget, revenue, (revenue - budget) / budget as roi
    from {{ ref('dim_title') }}
    where title_type = 'movie' and budget > 0 and revenue is not null
)
select
    g.genre_id,
    g.genre_name,
    count(*) as title_count,
    cast(sum(f.budget) as bigint) as total_budget,
    cast(sum(f.revenue) as bigint) as total_revenue,
    round((sum(f.revenue) - sum(f.budget)) / sum(f.budget), 4) as total_roi,
    round(median(f.roi), 4) as median_roi,
    round(avg(f.roi), 4) as avg_roi
from financials as f
join {{ ref('bridge_title_genre') }} as g on g.title_id = f.title_id
group by g.genre_id, g.genre_name
