-- Argo CD health of an aura.dev Agent, from the status the operator writes.
--
--   Healthy      phase Running, and the operator has seen the current spec generation
--   Progressing  any phase on the way somewhere (Queued ... Networking, Starting, Stopping,
--                Deleting, Checkpointing, Restoring, Hibernating, Waking), a Running Agent
--                whose latest spec the operator has not observed yet, or no status at all
--   Degraded     phase Degraded or Failed (the Ready condition says why)
--   Suspended    phase Stopped, Suspended or Hibernated while that is what the spec asks for
--   Missing      phase Deleted: the Agent's server and tailnet device are gone
--   Unknown      a phase this script does not know (a newer operator)
-- The message is the phase, then the Ready condition's message when there is one.

local PROGRESSING = {
  Queued = true, Provisioning = true, Configuring = true, Networking = true,
  Starting = true, Stopping = true, Deleting = true, Checkpointing = true,
  Restoring = true, Hibernating = true, Waking = true,
}
local RESTING = { Stopped = "stopped", Suspended = "suspended", Hibernated = "hibernated" }

local function ready_message(status)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" and condition.message ~= nil and condition.message ~= "" then
      return condition.message
    end
  end
  return nil
end

local function say(phase, status)
  local detail = ready_message(status)
  if detail == nil then
    return phase
  end
  return phase .. ": " .. detail
end

local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick the Agent up"
  return hs
end

local phase = status.phase
local desired = "running"
if obj.spec ~= nil and obj.spec.desiredState ~= nil then
  desired = obj.spec.desiredState
end
local observed = status.observedGeneration
local current = obj.metadata.generation

if phase == "Running" then
  if observed ~= nil and current ~= nil and observed < current then
    hs.status = "Progressing"
    hs.message = "Running; spec generation " .. current .. " not yet observed"
  else
    hs.status = "Healthy"
    hs.message = say(phase, status)
  end
elseif phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = say(phase, status)
elseif RESTING[phase] ~= nil then
  if desired == RESTING[phase] or (phase == "Hibernated" and desired ~= "running") then
    hs.status = "Suspended"
  else
    hs.status = "Progressing"
  end
  hs.message = say(phase, status)
elseif phase == "Deleted" then
  hs.status = "Missing"
  hs.message = say(phase, status)
elseif PROGRESSING[phase] then
  hs.status = "Progressing"
  hs.message = say(phase, status)
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
