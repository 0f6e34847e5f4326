//! The keyed tables both backends keep alike — the ticket index, the auto-resolve lifecycle
//! and the storm breaker's windows and memberships: one description per table, the SQL to
//! read a row by key and to write it whole (an upsert both SQLite and PostgreSQL accept), and
//! the values each record is written with. A backend differs only in its [`Dialect`] and in
//! how it binds a [`StoredValue`]. SQLite creates these tables from the descriptions here
//! ([`KeyedTable::sqlite_create`]); PostgreSQL's were created by its released migrations.

use super::{firing_json, TicketRecord};
use crate::resolved::ConnectionKey;

/// How a backend names its tables and parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// Put before every table name (PostgreSQL's tables share a schema with others).
    pub table_prefix: &'static str,
    /// Starts the 1-based positional parameters: `?1` in SQLite, `$1` in PostgreSQL.
    pub param_sign: char,
}

pub(crate) const SQLITE: Dialect = Dialect {
    table_prefix: "",
    param_sign: '?',
};

pub(crate) const POSTGRES: Dialect = Dialect {
    table_prefix: "psa_",
    param_sign: '$',
};

/// A table whose rows are read by their whole primary key and written whole.
#[derive(Debug)]
pub(crate) struct KeyedTable {
    /// Without the dialect's prefix.
    pub name: &'static str,
    /// The primary key's columns (text, not null), in the order they are bound.
    pub key: &'static [&'static str],
    /// The other columns, bound after the key and read in this order.
    pub values: &'static [Column],
}

/// A column other than the key's, and the kind of [`StoredValue`] it holds.
#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: ValueKind,
}

/// What a column holds: the [`StoredValue`] variants' kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Text,
    OptText,
    Int,
    OptInt,
    Flag,
}

const fn column(name: &'static str, kind: ValueKind) -> Column {
    Column { name, kind }
}

pub(crate) const GROUP_TICKETS: KeyedTable = KeyedTable {
    name: "group_tickets",
    key: &["namespace", "connection", "group_key"],
    values: &[
        column("ticket_id", ValueKind::Text),
        column("open", ValueKind::Flag),
        column("updated_at_ms", ValueKind::Int),
    ],
};

/// Auto-resolve: the alerts of a group's ticket still firing (a JSON array) and the status we
/// left it in.
pub(crate) const GROUP_LIFECYCLE: KeyedTable = KeyedTable {
    name: "group_lifecycle",
    key: &["namespace", "connection", "group_key"],
    values: &[
        column("ticket_id", ValueKind::Text),
        column("status_id", ValueKind::OptText),
        column("firing", ValueKind::Text),
    ],
};

pub(crate) const FINDING_TICKETS: KeyedTable = KeyedTable {
    name: "finding_tickets",
    key: &["namespace", "connection", "finding_id"],
    values: &[
        column("ticket_id", ValueKind::Text),
        column("updated_at_ms", ValueKind::Int),
    ],
};

/// Storm breaker: a customer's window and roll-up (JSON), and when the roll-up may close.
pub(crate) const STORM_WINDOWS: KeyedTable = KeyedTable {
    name: "storm_windows",
    key: &["namespace", "connection", "customer_id"],
    values: &[
        column("state", ValueKind::Text),
        column("close_due_ms", ValueKind::OptInt),
    ],
};

/// Storm breaker: which groups of a customer's current window got a ticket or went to the
/// roll-up.
pub(crate) const STORM_MEMBERS: KeyedTable = KeyedTable {
    name: "storm_members",
    key: &["namespace", "connection", "customer_id", "group_key"],
    values: &[
        column("window_start_ms", ValueKind::Int),
        column("member", ValueKind::Text),
    ],
};

/// The five keyed tables.
pub(crate) const ALL: [&KeyedTable; 5] = [
    &GROUP_TICKETS,
    &GROUP_LIFECYCLE,
    &FINDING_TICKETS,
    &STORM_WINDOWS,
    &STORM_MEMBERS,
];

impl ValueKind {
    /// The column type in SQLite (which keeps a flag as 0 / 1).
    fn sqlite_type(self) -> &'static str {
        match self {
            ValueKind::Text => "TEXT NOT NULL",
            ValueKind::OptText => "TEXT",
            ValueKind::Int | ValueKind::Flag => "INTEGER NOT NULL",
            ValueKind::OptInt => "INTEGER",
        }
    }
}

/// The two statements of a keyed table in one dialect.
#[derive(Debug)]
pub(crate) struct KeyedSql {
    /// `SELECT <values> … WHERE <key> = <params 1..>`.
    pub select: String,
    /// `INSERT <key, values> … ON CONFLICT (<key>) DO UPDATE SET <values>`.
    pub upsert: String,
}

impl KeyedTable {
    fn value_names(&self) -> impl Iterator<Item = &'static str> {
        self.values.iter().map(|c| c.name)
    }

    /// `CREATE TABLE IF NOT EXISTS` in SQLite: the key's columns, then the values'.
    pub(crate) fn sqlite_create(&self) -> String {
        let key = self.key.iter().map(|k| format!("{k} TEXT NOT NULL"));
        let values = self
            .values
            .iter()
            .map(|c| format!("{} {}", c.name, c.kind.sqlite_type()));
        let columns: Vec<String> = key.chain(values).collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({})) WITHOUT ROWID;",
            self.name,
            columns.join(", "),
            self.key.join(", ")
        )
    }

    pub(crate) fn sql(&self, dialect: Dialect) -> KeyedSql {
        let table = format!("{}{}", dialect.table_prefix, self.name);
        let param = |i: usize| format!("{}{}", dialect.param_sign, i + 1);
        let key_match: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = {}", param(i)))
            .collect();
        let values: Vec<&str> = self.value_names().collect();
        let columns: Vec<&str> = self.key.iter().copied().chain(self.value_names()).collect();
        let params: Vec<String> = (0..columns.len()).map(param).collect();
        let replaced: Vec<String> = values
            .iter()
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        KeyedSql {
            select: format!(
                "SELECT {} FROM {table} WHERE {}",
                values.join(", "),
                key_match.join(" AND ")
            ),
            upsert: format!(
                "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
                columns.join(", "),
                params.join(", "),
                self.key.join(", "),
                replaced.join(", ")
            ),
        }
    }
}

/// Every keyed table's statements in one dialect; a backend builds them once.
#[derive(Debug)]
pub(crate) struct KeyedStatements {
    pub group_tickets: KeyedSql,
    pub group_lifecycle: KeyedSql,
    pub finding_tickets: KeyedSql,
    pub storm_windows: KeyedSql,
    pub storm_members: KeyedSql,
}

impl KeyedStatements {
    pub(crate) fn new(dialect: Dialect) -> KeyedStatements {
        KeyedStatements {
            group_tickets: GROUP_TICKETS.sql(dialect),
            group_lifecycle: GROUP_LIFECYCLE.sql(dialect),
            finding_tickets: FINDING_TICKETS.sql(dialect),
            storm_windows: STORM_WINDOWS.sql(dialect),
            storm_members: STORM_MEMBERS.sql(dialect),
        }
    }

    /// The upsert of `table` (one of the tables above).
    pub(crate) fn upsert(&self, table: &KeyedTable) -> &str {
        let sql = match table.name {
            "group_tickets" => &self.group_tickets,
            "group_lifecycle" => &self.group_lifecycle,
            "finding_tickets" => &self.finding_tickets,
            "storm_windows" => &self.storm_windows,
            // `STORM_MEMBERS`, the last of the five (the tests map each table to its own).
            _ => &self.storm_members,
        };
        &sql.upsert
    }
}

/// A value bound to a statement, as both backends store it (SQLite keeps a flag as 0 / 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredValue {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
}

impl StoredValue {
    #[cfg(test)]
    fn kind(&self) -> ValueKind {
        match self {
            StoredValue::Text(_) => ValueKind::Text,
            StoredValue::OptText(_) => ValueKind::OptText,
            StoredValue::Int(_) => ValueKind::Int,
            StoredValue::OptInt(_) => ValueKind::OptInt,
            StoredValue::Flag(_) => ValueKind::Flag,
        }
    }
}

/// The whole key of a connection's row whose own key is `id`.
fn key(connection: &ConnectionKey, id: &str) -> [StoredValue; 3] {
    [
        StoredValue::Text(connection.namespace.clone()),
        StoredValue::Text(connection.name.clone()),
        StoredValue::Text(id.to_string()),
    ]
}

/// How an index record is written (`complete`).
#[derive(Debug)]
pub(crate) enum RecordWrite<'a> {
    /// The table and row (key, then values) the record replaces.
    Row(&'static KeyedTable, Vec<StoredValue>),
    /// `TicketRecord::Storm`: changes the customer's window by the storm rules
    /// (`decide::storm::noted`).
    StormNote(StormNote<'a>),
}

/// An alert that went to a customer's roll-up ticket (`TicketRecord::Storm`).
#[derive(Debug)]
pub(crate) struct StormNote<'a> {
    pub connection: &'a ConnectionKey,
    pub customer_id: &'a str,
    /// The roll-up this delivery created, if it did.
    pub created: Option<&'a str>,
    pub label: &'a str,
}

pub(crate) fn record_write(record: &TicketRecord) -> RecordWrite<'_> {
    use StoredValue::{Flag, Int, OptText, Text};
    let (table, key, values) = match record {
        TicketRecord::Group {
            connection,
            group_key,
            ticket,
        } => (
            &GROUP_TICKETS,
            key(connection, group_key),
            vec![
                Text(ticket.ticket_id.clone()),
                Flag(ticket.open),
                Int(ticket.updated_at_ms),
            ],
        ),
        TicketRecord::Lifecycle {
            connection,
            group_key,
            lifecycle,
        } => (
            &GROUP_LIFECYCLE,
            key(connection, group_key),
            vec![
                Text(lifecycle.ticket_id.clone()),
                OptText(lifecycle.status_id.clone()),
                Text(firing_json(&lifecycle.firing)),
            ],
        ),
        TicketRecord::Finding {
            connection,
            finding_id,
            ticket_id,
            updated_at_ms,
        } => (
            &FINDING_TICKETS,
            key(connection, finding_id),
            vec![Text(ticket_id.clone()), Int(*updated_at_ms)],
        ),
        TicketRecord::Storm {
            connection,
            customer_id,
            created,
            label,
        } => {
            return RecordWrite::StormNote(StormNote {
                connection,
                customer_id,
                created: created.as_deref(),
                label,
            })
        }
    };
    RecordWrite::Row(table, key.into_iter().chain(values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_dialects_tables_and_parameters() {
        let sql = FINDING_TICKETS.sql(SQLITE);
        assert_eq!(
            sql.select,
            "SELECT ticket_id, updated_at_ms FROM finding_tickets \
             WHERE namespace = ?1 AND connection = ?2 AND finding_id = ?3"
        );
        assert_eq!(
            sql.upsert,
            "INSERT INTO finding_tickets (namespace, connection, finding_id, ticket_id, \
             updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (namespace, connection, \
             finding_id) DO UPDATE SET ticket_id = excluded.ticket_id, \
             updated_at_ms = excluded.updated_at_ms"
        );
        let sql = STORM_MEMBERS.sql(POSTGRES);
        assert!(
            sql.select.ends_with(
                "FROM psa_storm_members WHERE namespace = $1 AND connection = $2 \
                 AND customer_id = $3 AND group_key = $4"
            ),
            "{}",
            sql.select
        );
    }

    #[test]
    fn sqlite_creates_a_table_from_its_description() {
        assert_eq!(
            GROUP_LIFECYCLE.sqlite_create(),
            "CREATE TABLE IF NOT EXISTS group_lifecycle (namespace TEXT NOT NULL, \
             connection TEXT NOT NULL, group_key TEXT NOT NULL, ticket_id TEXT NOT NULL, \
             status_id TEXT, firing TEXT NOT NULL, \
             PRIMARY KEY (namespace, connection, group_key)) WITHOUT ROWID;"
        );
    }

    /// The rows the stores write bind, column by column, the kind the table declares (a
    /// mismatch would store a flag where SQLite's schema says text, or fail in PostgreSQL).
    #[test]
    fn written_rows_bind_the_declared_kinds() {
        let connection = ConnectionKey::new("ns", "acme");
        let group = TicketRecord::Group {
            connection: connection.clone(),
            group_key: "k".into(),
            ticket: crate::dispatch::store::GroupTicket {
                ticket_id: "T".into(),
                open: true,
                updated_at_ms: 1,
            },
        };
        let lifecycle = TicketRecord::Lifecycle {
            connection: connection.clone(),
            group_key: "k".into(),
            lifecycle: crate::dispatch::store::GroupLifecycle::default(),
        };
        let finding = TicketRecord::Finding {
            connection: connection.clone(),
            finding_id: "f".into(),
            ticket_id: "T".into(),
            updated_at_ms: 1,
        };
        let window = crate::dispatch::decide::storm::StormWindow::default();
        let mut rows: Vec<(&KeyedTable, Vec<StoredValue>)> = [group, lifecycle, finding]
            .iter()
            .map(|r| match record_write(r) {
                RecordWrite::Row(table, row) => (table, row),
                RecordWrite::StormNote(_) => panic!("an index record writes a row"),
            })
            .collect();
        rows.push((
            &STORM_WINDOWS,
            crate::dispatch::store::storm::window_row(&connection, "c", &window),
        ));
        for (table, row) in rows {
            let kinds: Vec<ValueKind> = row[table.key.len()..]
                .iter()
                .map(StoredValue::kind)
                .collect();
            let declared: Vec<ValueKind> = table.values.iter().map(|c| c.kind).collect();
            assert_eq!(kinds, declared, "{}", table.name);
        }
    }

    #[test]
    fn every_table_has_its_own_upsert() {
        let statements = KeyedStatements::new(POSTGRES);
        for table in ALL {
            let upsert = statements.upsert(table);
            assert!(
                upsert.starts_with(&format!("INSERT INTO psa_{} (", table.name)),
                "{upsert}"
            );
        }
    }

    #[test]
    fn a_record_row_binds_its_key_then_its_values_in_column_order() {
        let record = TicketRecord::Group {
            connection: ConnectionKey::new("ns", "acme"),
            group_key: "k".into(),
            ticket: crate::dispatch::store::GroupTicket {
                ticket_id: "T1".into(),
                open: true,
                updated_at_ms: 5,
            },
        };
        let RecordWrite::Row(table, row) = record_write(&record) else {
            panic!("a group record writes a row")
        };
        assert_eq!(table.name, "group_tickets");
        assert_eq!(row.len(), table.key.len() + table.values.len());
        assert_eq!(
            row,
            [
                StoredValue::Text("ns".into()),
                StoredValue::Text("acme".into()),
                StoredValue::Text("k".into()),
                StoredValue::Text("T1".into()),
                StoredValue::Flag(true),
                StoredValue::Int(5),
            ]
        );
    }
}
