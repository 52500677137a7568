/**
 * Quoting for the SQL that takes no bind parameters (role and grant statements, a table name read
 * from the catalog): an identifier in double quotes, a literal in single quotes, each quote doubled.
 */
export const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
export const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;
