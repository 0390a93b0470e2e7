with

person_records as (

    select * from {{ source('linkage', 'person_records') }}

),

final as (

    select
        contract_id,
        delivery_id,
        row_number,
        person_id,
        household_id,
        match_method,
        match_probability,
        opted_out
    from person_records

)

select * from final
