/** The inventory the sample MCP server manages: a tiny in-memory store, so every tool has real effects. */
export interface Item {
  sku: string;
  name: string;
  stock: number;
}

/** Column names of each table, for `get_schema`. */
export const SCHEMAS: Record<string, string[]> = {
  items: ['sku TEXT PRIMARY KEY', 'name TEXT', 'stock INTEGER'],
  orders: ['id TEXT PRIMARY KEY', 'sku TEXT', 'quantity INTEGER'],
};

/** A fresh inventory. */
export function seedInventory(): Map<string, Item> {
  return new Map(
    [
      { sku: 'A-100', name: 'bolts', stock: 1200 },
      { sku: 'B-200', name: 'nuts', stock: 800 },
      { sku: 'C-300', name: 'washers', stock: 15 },
    ].map((item) => [item.sku, item]),
  );
}
