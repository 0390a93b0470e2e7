-- Mid-year population estimates by ward, sex and single year of age, with the ESP2013
-- five-year band each age falls in.

with

population as (

    select * from {{ ref('population_estimates') }}

),

bands as (

    select * from {{ ref('esp2013') }}

),

final as (

    select
        population.year,
        population.ward_code,
        population.sex,
        population.age,
        bands.age_band,
        bands.age_from as band_age_from,
        bands.weight as esp2013_weight,
        population.population
    from population
    inner join bands
        on population.age between bands.age_from and bands.age_to

)

select * from final
