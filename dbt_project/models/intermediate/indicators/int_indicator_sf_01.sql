-- SF-01: families meeting at least N (var sf_min_criteria, default 2) of the Supporting
-- Families headline criteria in the quarter (int_family_quarters), counted by ward and
-- district. A count of families, not a sample: no denominator and no interval.

with

families as (

    select * from {{ ref('int_family_quarters') }}

),

periods as (

    select distinct period_type, period_start, period_end from families

),

wards as (

    select * from {{ ref('geography_wards') }}

),

units as (

    select
        period_type,
        period_start,
        ward_code,
        district_code,
        1 as in_numerator
    from families
    where meets_programme_criteria
        and ward_code is not null

),

final as (

    {{ indicator_values_from_units('SF-01', 'units', 'periods', 'wards', kind='count', unit='families') }}

)

select * from final
