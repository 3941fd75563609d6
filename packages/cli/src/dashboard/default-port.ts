/**
 * The dashboard's default port, in a module of its own so that the command table can name it
 * without loading the server.
 */

/** 7890, the port Habitat (Absurd's own UI) also listens on by default. */
export const DEFAULT_PORT = 7890;
