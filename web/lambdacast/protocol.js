// The wire protocol's constants (protocol v1), shared by the client's parts and exported to apps.

export const PROTOCOL_VERSION = 1;

/** The server's largest `history` page (and `limit` maximum). */
export const HISTORY_PAGE = 100;

/** Channel names the server accepts (protocol v1). */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_\-=@,.;:]{1,128}$/;

/** WebSocket.OPEN: the only readyState whose send() reaches the server. */
export const OPEN = 1;
