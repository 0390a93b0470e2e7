with

postcodes as (

    select * from {{ ref('geography_postcodes') }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

final as (

    select
        {{ postcode_key('postcodes.postcode') }} as postcode_key,
        postcodes.postcode,
        postcodes.lsoa_code,
        postcodes.ward_code,
        wards.district_code
    from postcodes
    inner join wards on postcodes.ward_code = wards.ward_code

)

select * from final
