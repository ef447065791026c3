{#- A model-level uniqueness test over several columns (dbt_utils' test, without the package:
    packages cannot be downloaded on these machines). -#}
{% test unique_combination_of_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as duplicates
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
