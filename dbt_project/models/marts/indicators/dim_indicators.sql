with

definitions as (

    select * from {{ ref('indicator_definitions') }}

),

final as (

    select
        indicator_id,
        title,
        definition,
        source,
        numerator_definition,
        denominator_definition,
        unit,
        period_types,
        direction,
        target,
        method
    from definitions

)

select * from final
