// The shape of a dashboard JSON file, from Grafana's own schema types (@grafana/schema).
//
// JSON carries enum values as their plain strings ("value", "absolute", "palette-classic"), where
// the schema declares TypeScript string enums; `AsJson` turns every string enum into the union of
// its values and leaves everything else as the schema says, so a misspelt enum value, a missing
// required field or a field the schema does not know still fails to type-check.
import type { Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

export type AsJson<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<AsJson<U>>
      : T extends object
        ? { [K in keyof T]: AsJson<T[K]> }
        : T;

/** A Prometheus query of a panel: what Grafana's Prometheus data source stores. */
interface PrometheusTarget {
  refId: string;
  datasource: { type: 'prometheus'; uid: string };
  expr: string;
  editorMode?: 'code' | 'builder';
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  hide?: boolean;
}

/**
 * A panel of one visualisation: its `options` and `fieldConfig.defaults.custom` checked against
 * that panel plugin's schema. Grafana fills in options left out, hence `Partial` at the top.
 */
type TypedPanel<Type extends string, Options, Custom> = Omit<
  AsJson<Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'
> & {
  type: Type;
  title: string;
  datasource: { type: 'prometheus'; uid: string };
  targets: PrometheusTarget[];
  options: AsJson<Partial<Options>>;
  fieldConfig: {
    defaults: Omit<AsJson<FieldConfig>, 'custom'> & { custom?: AsJson<Partial<Custom>> };
    overrides: AsJson<FieldConfigSource['overrides']>;
  };
};

export type DashboardPanel =
  | TypedPanel<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | TypedPanel<'stat', Stat.Options, Record<string, never>>
  | TypedPanel<'bargauge', BarGauge.Options, Record<string, never>>
  | TypedPanel<'state-timeline', StateTimeline.Options, StateTimeline.FieldConfig>
  | TypedPanel<'table', Table.Options, Table.FieldConfig>;

export type DashboardRow = Omit<AsJson<RowPanel>, 'panels'> & { panels: DashboardPanel[] };

export type DashboardJson = Omit<AsJson<Dashboard>, 'panels'> & {
  uid: string;
  title: string;
  panels: Array<DashboardPanel | DashboardRow>;
};
