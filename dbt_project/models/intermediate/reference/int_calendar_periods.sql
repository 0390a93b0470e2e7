-- Every calendar month and quarter from January 2000 for sixty years: the periods any
-- indicator may report, before each indicator keeps the ones its data covers completely.

with

months as (

    select
        cast({{ dbt.dateadd('month', 'generated_number - 1', "cast('2000-01-01' as date)") }} as date) as month_start
    from ({{ dbt.generate_series(720) }}) as series

),

periods as (

    select
        'month' as period_type,
        month_start as period_start,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }} as date) as period_end
    from months

    union all

    select
        'quarter' as period_type,
        month_start as period_start,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, 'month_start')) }} as date) as period_end
    from months
    where extract(month from month_start) in (1, 4, 7, 10)

)

select * from periods
