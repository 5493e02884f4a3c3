//! The ledger over HTTP, read-only (from its directory or its object storage), in the C2SP
//! tlog-tiles layout: `/ledger/checkpoint`, `/ledger/tile/<L>/<N>[.p/<W>]`,
//! `/ledger/tile/entries/<N>[.p/<W>]`.
//!
//! Only what the published checkpoint covers is served: a tile or bundle beyond it may belong to
//! a batch that never finished, whose files the next writer removes and writes again. What is
//! covered never changes, so it is kept in memory ([`crate::tile_cache::TileCache`]), and a replica that reads the
//! ledger from object storage asks the store for each file once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::errors::error;
use crate::state::State as ServerState;
use crate::tile_cache::TileCache;
use assay_ledger::checkpoint::Checkpoint;
use assay_ledger::files::Files;
use assay_ledger::store::LogError;

async fn read(files: &Arc<dyn Files>, path: &str) -> Result<Option<Vec<u8>>, LogError> {
    let (files, wanted) = (Arc::clone(files), path.to_string());
    tokio::task::spawn_blocking(move || files.read(&wanted))
        .await
        .unwrap_or_else(|e| Err(LogError::Damaged(format!("the read failed: {e}"))))
}

/// Reads the checkpoint and notes the size it states in `cache`.
async fn checkpoint(files: &Arc<dyn Files>, cache: &TileCache) -> Result<Option<Vec<u8>>, LogError> {
    let note = read(files, "checkpoint").await?;
    if let Some(size) = note.as_deref().and_then(Checkpoint::stated_size) {
        cache.saw(size);
    }
    Ok(note)
}

/// The storage failed: the client may try again (a 404 would say the file is gone).
fn unavailable(e: LogError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string())
}

/// `GET /ledger/{path}`.
pub(crate) async fn serve(State(state): State<Arc<ServerState>>, Path(path): Path<String>) -> Response {
    let Some(files) = state.ledger.files.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "this server keeps no ledger");
    };
    let cache = &state.ledger.tiles;
    if path == "checkpoint" {
        return match checkpoint(&files, cache).await {
            Ok(Some(note)) => {
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], note)
                    .into_response()
            }
            Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "the ledger has no checkpoint"),
            Err(e) => unavailable(e),
        };
    }
    let Some((level, index, width)) = assay_ledger::tiles::parse_path(&path) else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("{path} is not a tlog-tiles path"));
    };
    let Some(needs) = assay_ledger::tiles::needs_size(level.unwrap_or(0), index, width) else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no {path} in the ledger"));
    };
    let cache_control = if width < assay_ledger::tiles::WIDTH { "max-age=60" } else { "max-age=31536000, immutable" };
    let respond = |bytes: Bytes| {
        ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache_control)], bytes)
            .into_response()
    };
    if let Some(bytes) = cache.get(&path) {
        return respond(bytes);
    }
    if needs > cache.published() {
        // Perhaps a newer checkpoint than this replica has read.
        if let Err(e) = checkpoint(&files, cache).await {
            return unavailable(e);
        }
        let published = cache.published();
        if needs > published {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{path} is beyond the published checkpoint (size {published})"),
            );
        }
    }
    match read(&files, &path).await {
        Ok(Some(bytes)) => {
            let bytes = Bytes::from(bytes);
            cache.put(&path, bytes.clone());
            respond(bytes)
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no {path} in the ledger")),
        Err(e) => unavailable(e),
    }
}
