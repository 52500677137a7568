// The template's sample handler (faas-cli new --lang hono copies it; faas-cli build replaces this
// folder with the function's handler folder). A function exports { app, init?, close? }.
import { Hono } from 'hono';

const app = new Hono();
app.post('/', async (c) => c.json({ received: await c.req.text() }));

export default { app };
