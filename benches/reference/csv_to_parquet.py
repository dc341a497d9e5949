"""pyarrow reference for benches/data.sh: every CSV file under DIR/csv
converted to a Parquet file (snappy, as wray writes) in DIR/parquet-pyarrow."""
import os
import sys
import time

import pyarrow.csv as csv
import pyarrow.parquet as pq

src = os.path.join(sys.argv[1], "csv")
out = os.path.join(sys.argv[1], "parquet-pyarrow")
os.makedirs(out, exist_ok=True)
start = time.perf_counter()
rows = 0
for name in sorted(os.listdir(src)):
    if name.startswith((".", "_")):
        continue
    table = csv.read_csv(os.path.join(src, name))
    rows += table.num_rows
    pq.write_table(table, os.path.join(out, name + ".parquet"), compression="snappy")
print(f"pyarrow csv to parquet: {rows} rows in {time.perf_counter() - start:.2f} s", flush=True)
