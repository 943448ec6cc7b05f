"""Spreadsheet import of contacts: read .xlsx / .csv, map columns, validate every row, write in bulk."""
