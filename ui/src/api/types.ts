// Shapes of the API's answers the dashboard reads (see /api/openapi.json and the README's API
// section). Kept beside endpoints.json, which server/src/http/openapi.rs checks in its tests.

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface Tokens {
  access_token: string;
  expires_in: number;
  token_type: string;
  session?: 'cookie';
}

export type Role = 'admin' | 'user' | 'readonly';

export interface User {
  id: string;
  email: string;
  name: string;
  roles: Role[];
  permissions: string[];
  effective_permissions: string[];
  app_access: string[];
  disabled: boolean;
  created_at_ms: number;
  last_login_at_ms: number | null;
  locked_until_ms: number | null;
}

/** `/api/auth/me`: the user and the routes ("METHOD /path") the server lets it call. */
export interface Me extends User {
  allowed: string[];
}

export interface App {
  id: string;
  name: string;
  owner_id: string;
  created_at_ms: number;
  allowed_origins: string[];
  strict_fields: boolean;
}

export interface CreatedApp {
  id: string;
  name: string;
  api_key: string;
  key_id: string;
}

export interface ApiKey {
  id: string;
  prefix: string;
  scope: string;
  created_at_ms: number;
  revoked_at_ms: number | null;
  active: boolean;
}

export interface CreatedKey {
  api_key: string;
  key_id: string;
  prefix?: string;
}

export type Source = 'rollup' | 'scan';

export interface Stats {
  total_events: number;
  active_users: number;
  revenue: number;
  conversion_rate: number | null;
  installs: number;
  purchases: number;
  from: number;
  to: number;
  source: Source;
}

export interface TimePoint {
  time: string;
  events: number;
  users: number;
  revenue: number;
}

export interface EventsOverTime {
  interval: 'hour' | 'day';
  points: TimePoint[];
  source: Source;
}

export interface PlatformRow {
  platform: string;
  events: number;
  users: number;
}

export interface CampaignRow {
  campaign: string | null;
  source: string | null;
  medium: string | null;
  events: number;
  installs: number;
  purchases: number;
  revenue: number;
  users: number;
}

export interface Rows<T> {
  rows: T[];
  source: Source;
}

export interface Retention {
  cohort_event: string;
  days: number;
  cohorts: { cohort: string; size: number; retained: number[] }[];
  source: Source;
}

export interface Funnel {
  window_ms: number;
  steps: { event_type: string; users: number; conversion: number | null }[];
  source: Source;
}

export type Model = 'last_touch' | 'first_touch' | 'linear' | 'time_decay' | 'position_based';

export interface AttributionRow {
  campaign: string | null;
  source: string | null;
  medium: string | null;
  conversions: number;
  revenue: number;
  clicks: number;
  impressions: number;
  conversion_rate: number | null;
}

export interface AttributionReport {
  model: Model;
  rows: AttributionRow[];
  unattributed: { conversions: number; revenue: number };
  total_conversions: number;
  total_revenue: number;
  events_scanned: number;
  identities: number;
  excluded_fraud?: { conversions: number; revenue: number; touchpoints: number };
}

export interface FraudRow {
  source: string | null;
  clicks: number;
  installs: number;
  click_injection: number;
  abnormal_device_clicks: number;
  abnormal_ip_clicks: number;
  deny_listed_clicks: number;
  deny_listed_installs: number;
  flagged_click_rate: number | null;
}

export interface FraudReport {
  rules: Record<string, unknown>;
  rows: FraudRow[];
  flagged_devices: number;
  flagged_ips: number;
  events_scanned: number;
}

export interface QueryColumn {
  name: string;
  type: string;
}

export interface QueryResult {
  columns: QueryColumn[];
  rows: unknown[][];
  row_count?: number;
  truncated?: boolean;
  elapsed_ms?: number;
  query_id?: string;
}

export interface AuditRecord {
  seq: number;
  at_ms: number;
  node: number;
  actor: string;
  source_ip: string;
  action: string;
  target: string;
  outcome: string;
  detail: string;
  log_index: number;
  hash: string;
}

export interface AuditPage {
  records: AuditRecord[];
  head: { seq: number; hash: string };
  next_before?: number | null;
}

export interface AuditVerify {
  ok: boolean;
  records: number;
  [k: string]: unknown;
}

export interface ClusterNode {
  id: number;
  http_addr: string;
  raft_addr: string;
  role: 'leader' | 'follower' | 'candidate' | 'learner';
  voter: boolean;
  reachable: boolean;
  last_log_index: number | null;
  applied_index: number | null;
  term: number | null;
}

export interface Cluster {
  leader: number | null;
  term: number;
  nodes: ClusterNode[];
}
