-- FALLS-01: emergency hospital admissions due to falls, aged 65+, directly age-standardised
-- rate per 100,000 person-years (ESP2013 weights, bands 65-69 ... 90+), with 95% Dobson
-- limits, by ward and district, month and quarter, for persons and by sex. Person-years are
-- the mid-year population times the period's share of its year, so months, quarters and
-- years are on one annual scale.

with

bands as (

    select * from {{ ref('int_indicator_falls_01_bands') }}

),

final as (

    select
        'FALLS-01' as indicator_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown,
        sum(events) as numerator,
        -- The rate is per person-year (annualised); the denominator shown is residents aged 65+.
        sum(residents) as denominator,
        {{ dsr_value('events', 'person_years', 'esp2013_weight', 100000) }} as value,
        {{ dobson_lower(dsr_total_count('events'),
                        dsr_value('events', 'person_years', 'esp2013_weight', 100000),
                        dsr_variance('events', 'person_years', 'esp2013_weight', 100000), 0.95) }} as lower_ci,
        {{ dobson_upper(dsr_total_count('events'),
                        dsr_value('events', 'person_years', 'esp2013_weight', 100000),
                        dsr_variance('events', 'person_years', 'esp2013_weight', 100000), 0.95) }} as upper_ci,
        'per 100,000 person-years' as unit
    from bands
    group by period_type, period_start, period_end, geography_type, geography_code, breakdown

)

select * from final
