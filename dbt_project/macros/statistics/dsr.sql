{#-
    Directly standardised rates (DSR) with Dobson confidence limits, as
    PHEindicatormethods::calculate_dsr computes them (2.1.0), optionally with the
    limits adjusted for non-independent events (one person, several events).

    The aggregate macros are used over one row per standardisation band (e.g. the
    19 ESP2013 age bands) per group, in a select that groups by the caller's group
    columns (area, period, ...):

        DSR      = multiplier * sum(w_i x_i / n_i) / sum(w_i)
        var(DSR) = multiplier^2 * sum(s_i (w_i / n_i)^2) / sum(w_i)^2
        limit    = DSR + sqrt(var(DSR) / X) * (byars(X) - X),   X = sum(x_i)

    The sums of fractions are exact_sum (same bits on every build); the others add
    whole numbers, which doubles add exactly in any order.
    x_i count, n_i population, w_i standard weight; s_i = x_i for independent
    events, or the sum over people of (their events)^2 for non-independent events.
    Value and limits are null when X < min_count (PHE: 10). A null count is 0
    (PHE na.zero); every band must have a population > 0 and every group must
    carry all bands (a band with 0 events is a row with count 0, not a missing row),
    else the weights do not sum to the standard total.
    Documented in statistics.yml.
-#}

{#- Gate: the expression when sum(count) >= min_count, else null. -#}
{% macro _dsr_gate(count_expr, min_count, expr) -%}
    (case when sum({{ stat_float(count_expr) }}) >= {{ min_count }} then {{ expr }} end)
{%- endmacro %}

{#- Total events in the group: sum(count), nulls as 0. -#}
{% macro dsr_total_count(count_expr) -%}
    coalesce(sum({{ stat_float(count_expr) }}), 0)
{%- endmacro %}

{#- Aggregate: the directly standardised rate per `multiplier`; null below min_count. -#}
{% macro dsr_value(count_expr, population_expr, weight_expr, multiplier=100000, min_count=10) -%}
    {%- set expr -%}
        ({{ multiplier }} * {{ exact_sum(stat_float(count_expr) ~ ' * ' ~ stat_float(weight_expr) ~ ' / ' ~ stat_float(population_expr)) }}
         / sum({{ stat_float(weight_expr) }}))
    {%- endset -%}
    {{ _dsr_gate(count_expr, min_count, expr) }}
{%- endmacro %}

{#- Aggregate: Dobson's variance term of the DSR on the multiplier's scale,
    multiplier^2 * sum(s_i (w_i/n_i)^2) / sum(w_i)^2, where s_i = count_expr, or
    squared_events_expr when events are not independent (see
    event_frequency_squares). Null below min_count. -#}
{% macro dsr_variance(count_expr, population_expr, weight_expr, multiplier=100000, min_count=10, squared_events_expr=none) -%}
    {%- set s = squared_events_expr if squared_events_expr is not none else count_expr -%}
    {%- set expr -%}
        (power({{ stat_float(multiplier) }}, 2)
         * {{ exact_sum('coalesce(' ~ stat_float(s) ~ ', 0) * power(' ~ stat_float(weight_expr) ~ ' / ' ~ stat_float(population_expr) ~ ', 2)') }}
         / power(sum({{ stat_float(weight_expr) }}), 2))
    {%- endset -%}
    {{ _dsr_gate(count_expr, min_count, expr) }}
{%- endmacro %}

{#- Row-level helper for non-independent events: sum_k k^2 f_k from the columns
    holding f_k = number of people with exactly k events, given as a list in
    order k = 1, 2, ... (nulls as 0), or as a dict {k: column}.
    e.g. event_frequency_squares(['f1', 'f2', 'f3', 'f4'])
      -> (1 * coalesce(f1, 0) + 4 * coalesce(f2, 0) + 9 * coalesce(f3, 0) + 16 * coalesce(f4, 0)) -#}
{% macro event_frequency_squares(frequency_columns) -%}
    {%- if frequency_columns is mapping -%}
        {%- set pairs = frequency_columns.items() | list -%}
    {%- else -%}
        {%- set pairs = [] -%}
        {%- for col in frequency_columns -%}{%- do pairs.append((loop.index, col)) -%}{%- endfor -%}
    {%- endif -%}
    ({%- for k, col in pairs -%}
        {{ (k | int) * (k | int) }} * coalesce({{ stat_float(col) }}, 0){{ ' + ' if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{#- Same for the event count, sum_k k f_k. -#}
{% macro event_frequency_events(frequency_columns) -%}
    {%- if frequency_columns is mapping -%}
        {%- set pairs = frequency_columns.items() | list -%}
    {%- else -%}
        {%- set pairs = [] -%}
        {%- for col in frequency_columns -%}{%- do pairs.append((loop.index, col)) -%}{%- endfor -%}
    {%- endif -%}
    ({%- for k, col in pairs -%}
        {{ k | int }} * coalesce({{ stat_float(col) }}, 0){{ ' + ' if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{#- Scalar: Dobson limits from the total count X, the DSR and its variance (both
    on the multiplier's scale): DSR + sqrt(var / X) * (byars(X) - X).
    Null when X < min_count or any input is null. -#}
{% macro _dobson_limit(total_count_expr, dsr_expr, variance_expr, confidence, min_count, side) -%}
    {%- set x = stat_float(total_count_expr) -%}
    {%- set byars = byars_lower(total_count_expr, confidence) if side == 'lower' else byars_upper(total_count_expr, confidence) -%}
    (case
        when {{ x }} >= {{ min_count }} and {{ x }} > 0
            then {{ dsr_expr }} + sqrt({{ variance_expr }} / {{ x }}) * ({{ byars }} - {{ x }})
    end)
{%- endmacro %}

{% macro dobson_lower(total_count_expr, dsr_expr, variance_expr, confidence=0.95, min_count=10) -%}
    {{ _dobson_limit(total_count_expr, dsr_expr, variance_expr, confidence, min_count, 'lower') }}
{%- endmacro %}

{% macro dobson_upper(total_count_expr, dsr_expr, variance_expr, confidence=0.95, min_count=10) -%}
    {{ _dobson_limit(total_count_expr, dsr_expr, variance_expr, confidence, min_count, 'upper') }}
{%- endmacro %}

{#- Select-list fragment for a grouped select over band rows: emits
        <prefix>total_count, <prefix>value, <prefix>lower_ci, <prefix>upper_ci
    For several confidence levels (a list, e.g. [0.95, 0.998]) the limit columns
    are suffixed by level: lower_ci_95, upper_ci_95, lower_ci_99_8, upper_ci_99_8.
    Pass squared_events_expr (e.g. event_frequency_squares([...])) for limits
    adjusted for non-independent events. No trailing comma. -#}
{% macro dsr_with_dobson(count_expr, population_expr, weight_expr, multiplier=100000, confidence=0.95,
                         min_count=10, squared_events_expr=none, column_prefix='') -%}
    {%- set total = dsr_total_count(count_expr) -%}
    {%- set value = dsr_value(count_expr, population_expr, weight_expr, multiplier, min_count) -%}
    {%- set variance = dsr_variance(count_expr, population_expr, weight_expr, multiplier, min_count, squared_events_expr) -%}
    {%- set levels = confidence if (confidence is iterable and confidence is not string) else [confidence] -%}
    {{ total }} as {{ column_prefix }}total_count,
    {{ value }} as {{ column_prefix }}value
    {%- for level in levels -%}
        {%- set suffix = '' if levels | length == 1 else '_' ~ confidence_label(level) -%},
    {{ dobson_lower(total, value, variance, level, min_count) }} as {{ column_prefix }}lower_ci{{ suffix }},
    {{ dobson_upper(total, value, variance, level, min_count) }} as {{ column_prefix }}upper_ci{{ suffix }}
    {%- endfor -%}
{%- endmacro %}
