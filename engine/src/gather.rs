//! Copying chosen rows of several record batches into one, in a given order (the flush's and
//! compaction's sort). Arrow's `interleave` does this for every column, but for a map column
//! it falls back to extending a generic array builder row by row; here a map column is
//! gathered through its key and value string arrays instead, which `interleave` copies fast.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::interleave;
use arrow::datatypes::DataType;

use crate::error::Result;

/// Rows `picks` (source batch, row) of `sources`, in that order. Every source has the same
/// schema.
pub(crate) fn gather(sources: &[RecordBatch], picks: &[(usize, usize)]) -> Result<RecordBatch> {
    let Some(first) = sources.first() else {
        return Ok(RecordBatch::new_empty(crate::schema::events_schema()));
    };
    let mut columns = Vec::with_capacity(first.num_columns());
    for c in 0..first.num_columns() {
        let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(c).as_ref()).collect();
        columns.push(match first.column(c).data_type() {
            DataType::Map(_, _) => gather_map(&arrays, picks)?,
            _ => interleave(&arrays, picks)?,
        });
    }
    Ok(RecordBatch::try_new(first.schema(), columns)?)
}

fn gather_map(arrays: &[&dyn Array], picks: &[(usize, usize)]) -> Result<ArrayRef> {
    let maps: Vec<&MapArray> = arrays.iter().map(|a| a.as_map()).collect();
    let mut lengths = Vec::with_capacity(picks.len());
    let mut entries = Vec::new();
    let mut valid = Vec::with_capacity(picks.len());
    for &(b, row) in picks {
        let m = maps[b];
        let offsets = m.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        lengths.push(end - start);
        entries.extend((start..end).map(|i| (b, i)));
        valid.push(m.is_valid(row));
    }
    let keys: Vec<&dyn Array> = maps.iter().map(|m| m.keys().as_ref()).collect();
    let values: Vec<&dyn Array> = maps.iter().map(|m| m.values().as_ref()).collect();
    let (field, sorted) = match maps[0].data_type() {
        DataType::Map(field, sorted) => (field.clone(), *sorted),
        _ => unreachable!("gather_map is only called for map columns"),
    };
    let struct_fields = maps[0].entries().fields().clone();
    let entries = StructArray::try_new(
        struct_fields,
        vec![interleave(&keys, &entries)?, interleave(&values, &entries)?],
        None,
    )?;
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    Ok(Arc::new(MapArray::try_new(
        field,
        OffsetBuffer::from_lengths(lengths),
        entries,
        nulls,
        sorted,
    )?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::{MapBuilder, StringBuilder};
    use arrow::compute::interleave_record_batch;
    use arrow::datatypes::{Field, Schema};

    fn batch(rows: &[Option<&[(&str, &str)]>]) -> RecordBatch {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for row in rows {
            match row {
                Some(pairs) => {
                    for (k, v) in *pairs {
                        b.keys().append_value(k);
                        b.values().append_value(v);
                    }
                    b.append(true).unwrap();
                }
                None => b.append(false).unwrap(),
            }
        }
        let m = b.finish();
        let schema = Schema::new(vec![Field::new("m", m.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(m)]).unwrap()
    }

    #[test]
    fn maps_come_out_as_arrow_interleave_makes_them() {
        let a = batch(&[Some(&[("k", "1"), ("j", "2")]), None, Some(&[])]);
        let b = batch(&[Some(&[("x", "y")]), Some(&[("k", "3")])]);
        let picks = [(1, 1), (0, 0), (0, 1), (1, 0), (0, 2), (0, 0)];
        let ours = gather(&[a.clone(), b.clone()], &picks).unwrap();
        let theirs = interleave_record_batch(&[&a, &b], &picks).unwrap();
        assert_eq!(ours, theirs);
        let no_nulls = gather(&[a.clone(), b.clone()], &[(1, 0), (0, 2)]).unwrap();
        assert_eq!(no_nulls.column(0).null_count(), 0);
        assert_eq!(
            no_nulls,
            interleave_record_batch(&[&a, &b], &[(1, 0), (0, 2)]).unwrap()
        );
    }
}
