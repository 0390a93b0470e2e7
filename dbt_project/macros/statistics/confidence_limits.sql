{#-
    Public-health statistics in SQL: z values, Byar's limits for counts and Wilson
    score limits for proportions, as PHEindicatormethods 2.1.0 computes them.
    Every macro renders a plain scalar SQL expression (sqrt, power, cast, case),
    so it can be used in any select list. Checked against the PHE test vectors by
    tests/integration/test_dbt_statistics_macros.py. Documented in statistics.yml.
-#}

{#- The floating type all statistics are computed in. Overridable per adapter
    (adapter.dispatch) should a warehouse lack DOUBLE PRECISION. -#}
{% macro stat_float_type() -%}
    {{ return(adapter.dispatch('stat_float_type', 'partnership')()) }}
{%- endmacro %}

{% macro default__stat_float_type() -%}
    double precision
{%- endmacro %}

{#- cast(<expr> as double precision) -#}
{% macro stat_float(expr) -%}
    cast({{ expr }} as {{ stat_float_type() }})
{%- endmacro %}


{#- Two-sided standard normal quantile for a confidence level, as a numeric
    literal: Phi^-1(confidence + (1 - confidence) / 2). Only the levels the
    indicators use are accepted (0.95 / 95 and 0.998 / 99.8); anything else is a
    compile-time error. -#}
{% macro z_score(confidence) -%}
    {%- set table = {
        '0.95': '1.959963984540054',
        '0.998': '3.090232306167813',
    } -%}
    {%- set c = confidence | float -%}
    {%- if c > 1 -%}{%- set c = c / 100 -%}{%- endif -%}
    {%- set key = '%g' | format(c) -%}
    {%- if key not in table -%}
        {{ exceptions.raise_compiler_error(
            "z_score: unsupported confidence " ~ confidence ~
            "; use 0.95 (95%) or 0.998 (99.8%)") }}
    {%- endif -%}
    {{ table[key] }}
{%- endmacro %}

{#- Short label for a confidence level, for column names: 0.95 -> '95', 0.998 -> '99_8'. -#}
{% macro confidence_label(confidence) -%}
    {%- set _ = z_score(confidence) -%}
    {%- set c = confidence | float -%}
    {%- if c <= 1 -%}{%- set c = c * 100 -%}{%- endif -%}
    {{ ('%g' | format(c)) | replace('.', '_') }}
{%- endmacro %}


{#- Byar's lower limit for a count x:  x * (1 - 1/(9x) - z/(3 sqrt(x)))^3.
    0 for x = 0 (exact Poisson limit; PHE's formula gives NaN there);
    null when the formula goes negative (tiny x at 99.8%, e.g. x = 1), as
    PHEindicatormethods sets those to NA; null for null or negative x. -#}
{% macro byars_lower(count_expr, confidence=0.95) -%}
    {%- set x = stat_float(count_expr) -%}
    {%- set z = z_score(confidence) -%}
    {%- set base -%}(1 - 1 / (9 * {{ x }}) - {{ z }} / (3 * sqrt({{ x }}))){%- endset -%}
    (case
        when {{ x }} = 0 then {{ stat_float('0') }}
        when {{ x }} > 0 and {{ base }} >= 0
            then {{ x }} * power({{ base }}, 3)
    end)
{%- endmacro %}

{#- Byar's upper limit for a count x:  (x+1) * (1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3.
    Defined for x = 0; null for null or negative x. -#}
{% macro byars_upper(count_expr, confidence=0.95) -%}
    {%- set x1 -%}({{ stat_float(count_expr) }} + 1){%- endset -%}
    {%- set z = z_score(confidence) -%}
    (case
        when {{ x1 }} >= 1
            then {{ x1 }} * power(1 - 1 / (9 * {{ x1 }}) + {{ z }} / (3 * sqrt({{ x1 }})), 3)
    end)
{%- endmacro %}


{#- Wilson score limits for a proportion x / n, as a proportion (0..1):
    (2x + z^2 -/+ z sqrt(z^2 + 4x(1 - x/n))) / (2 (n + z^2)).
    Null when n = 0 (or either input is null or negative). Requires x <= n. -#}
{% macro _wilson_limit(numerator_expr, denominator_expr, confidence, sign) -%}
    {%- set x = stat_float(numerator_expr) -%}
    {%- set n = stat_float(denominator_expr) -%}
    {%- set z = z_score(confidence) -%}
    (case
        when {{ n }} > 0 and {{ x }} >= 0
            then (2 * {{ x }} + {{ z }} * {{ z }}
                  {{ sign }} {{ z }} * sqrt({{ z }} * {{ z }} + 4 * {{ x }} * (1 - {{ x }} / {{ n }})))
                 / 2 / ({{ n }} + {{ z }} * {{ z }})
    end)
{%- endmacro %}

{% macro wilson_lower(numerator_expr, denominator_expr, confidence=0.95) -%}
    {{ _wilson_limit(numerator_expr, denominator_expr, confidence, '-') }}
{%- endmacro %}

{% macro wilson_upper(numerator_expr, denominator_expr, confidence=0.95) -%}
    {{ _wilson_limit(numerator_expr, denominator_expr, confidence, '+') }}
{%- endmacro %}


{#- Aggregate: sum(expr) as a double that is the same on every build. DuckDB adds doubles
    in parallel in no fixed order, so a plain sum of fractions can differ in its last bits
    between two builds of the same rows (and a release fingerprint with it). Each term is
    rounded to 18 decimal places and added as a DECIMAL(38, 18), which is exact and so does
    not depend on the order; a sum past 10^20 fails rather than wraps. -#}
{% macro exact_sum(expr) -%}
    cast(sum(cast({{ expr }} as decimal(38, 18))) as {{ stat_float_type() }})
{%- endmacro %}


{#- A proportion x / n as a percentage with its Wilson score limits, as the indicators publish
    it: value 100 x / n, null when n = 0; limits exactly 0 at x = 0 and 100 at x = n (floating
    arithmetic would give a few 1e-15 either side). -#}
{% macro percentage_value(numerator_expr, denominator_expr) -%}
    (case when {{ denominator_expr }} > 0
          then 100 * {{ stat_float(numerator_expr) }} / {{ stat_float(denominator_expr) }} end)
{%- endmacro %}

{% macro percentage_lower_ci(numerator_expr, denominator_expr, confidence=0.95) -%}
    (case when {{ denominator_expr }} > 0 and {{ numerator_expr }} = 0 then {{ stat_float('0') }}
          else 100 * {{ wilson_lower(numerator_expr, denominator_expr, confidence) }} end)
{%- endmacro %}

{% macro percentage_upper_ci(numerator_expr, denominator_expr, confidence=0.95) -%}
    (case when {{ denominator_expr }} > 0 and {{ numerator_expr }} = {{ denominator_expr }} then {{ stat_float('100') }}
          else 100 * {{ wilson_upper(numerator_expr, denominator_expr, confidence) }} end)
{%- endmacro %}
