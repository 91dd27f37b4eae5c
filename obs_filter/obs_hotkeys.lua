-- Brushstream hotkeys for OBS (Tools > Scripts > +, pick this file; then Settings > Hotkeys > "Brushstream: ...").
-- Each hotkey broadcasts an obs-websocket custom event {"brushstream": REQUEST}; the running `brushstream obs`
-- filter receives it and switches style or strength. The call goes through obs-websocket's own API (the
-- obs_websocket_api_get_ph proc handler), so nothing but OBS and its bundled websocket is needed.
obs = obslua

local REQUESTS = {
    {"next_style", "Brushstream: next style"},
    {"previous_style", "Brushstream: previous style"},
    {"strength_up", "Brushstream: more style"},
    {"strength_down", "Brushstream: less style"},
}
local hotkey_ids = {}

-- obslua hands pointers out of calldata as void*, which its own proc_handler_call refuses, so the two calls to
-- obs-websocket's API go through LuaJIT's FFI (the calldata helpers used are libobs's exported functions).
local ffi = require("ffi")
ffi.cdef[[
typedef struct proc_handler proc_handler_t;
typedef struct calldata { uint8_t *stack; size_t size; size_t capacity; bool fixed; } calldata_t;
proc_handler_t *obs_get_proc_handler(void);
bool proc_handler_call(proc_handler_t *handler, const char *name, calldata_t *params);
void calldata_set_data(calldata_t *data, const char *name, const void *in, size_t new_size);
bool calldata_get_data(const calldata_t *data, const char *name, void *out, size_t size);
void bfree(void *ptr);
struct obs_websocket_request_response { unsigned int status_code; char *comment; char *response_data; };
]]

local function libobs()
    -- On Linux libobs's symbols are already global in the OBS process; elsewhere load it by name.
    if pcall(function() return ffi.C.obs_get_proc_handler end) then return ffi.C end
    for _, name in ipairs({"obs", "libobs.so.0", "libobs.0.dylib"}) do
        local ok, lib = pcall(ffi.load, name)
        if ok then return lib end
    end
    return nil
end
local lib = libobs()

local function set_string(cd, key, value)
    lib.calldata_set_data(cd, key, value, #value + 1)
end

local function get_ptr(cd, key)
    local out = ffi.new("void *[1]")
    if lib.calldata_get_data(cd, key, out, ffi.sizeof("void *")) then return out[0] end
    return nil
end

local function free_calldata(cd)
    if not cd.fixed and cd.stack ~= nil then lib.bfree(cd.stack) end
end

local function broadcast(request)
    if lib == nil then
        obs.script_log(obs.LOG_WARNING, "Brushstream: libobs not reachable through FFI; cannot send " .. request)
        return
    end
    local cd = ffi.new("calldata_t")
    lib.proc_handler_call(lib.obs_get_proc_handler(), "obs_websocket_api_get_ph", cd)
    local ph = get_ptr(cd, "ph")
    free_calldata(cd)
    if ph == nil then
        obs.script_log(obs.LOG_WARNING, "Brushstream: obs-websocket is not loaded; cannot send " .. request)
        return
    end
    cd = ffi.new("calldata_t")
    set_string(cd, "request_type", "BroadcastCustomEvent")
    set_string(cd, "request_data", '{"eventData":{"brushstream":"' .. request .. '"}}')
    lib.proc_handler_call(ffi.cast("proc_handler_t *", ph), "call_request", cd)
    local response = get_ptr(cd, "response")
    free_calldata(cd)
    if response ~= nil then
        local r = ffi.cast("struct obs_websocket_request_response *", response)
        if r.status_code ~= 100 then
            obs.script_log(obs.LOG_WARNING, "Brushstream: BroadcastCustomEvent failed with code " .. r.status_code)
        end
        if r.comment ~= nil then lib.bfree(r.comment) end
        if r.response_data ~= nil then lib.bfree(r.response_data) end
        lib.bfree(response)
    end
end

function script_description()
    return "Brushstream live style: hotkeys for the next/previous style and more/less style strength."
end

function script_load(settings)
    for _, entry in ipairs(REQUESTS) do
        local request, label = entry[1], entry[2]
        local id = obs.obs_hotkey_register_frontend("brushstream." .. request, label, function(pressed)
            if pressed then broadcast(request) end
        end)
        local saved = obs.obs_data_get_array(settings, "brushstream." .. request)
        obs.obs_hotkey_load(id, saved)
        obs.obs_data_array_release(saved)
        hotkey_ids[request] = id
    end
end

function script_save(settings)
    for request, id in pairs(hotkey_ids) do
        local keys = obs.obs_hotkey_save(id)
        obs.obs_data_set_array(settings, "brushstream." .. request, keys)
        obs.obs_data_array_release(keys)
    end
end
