-- The standardisation bands behind every directly standardised indicator value (FALLS-01): what
-- the release engine standardises again after disclosure control, so that a published rate is
-- computed from protected counts (docs/protocols.md). Its post-hook creates the warehouse's
-- statistics functions (macros/statistics/functions.sql) the release engine computes with.

{{ config(post_hook="{{ create_statistics_functions() }}") }}

with

falls_01 as (select * from {{ ref('int_indicator_falls_01_bands') }}),

final as (

    select
        indicator_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown,
        age_band as band,
        cast(esp2013_weight as {{ stat_float_type() }}) as standard_weight,
        cast(residents as bigint) as residents,
        person_years,
        cast(events as bigint) as events
    from falls_01

)

select * from final
