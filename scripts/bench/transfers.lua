-- wrk script: unique transfers among N accounts (uniform) or 90% touching 10 hot accounts.
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  accounts = tonumber(args[1] or "1000")
  hot = args[2] == "hot"
  math.randomseed(os.time() + tid * 7919)
end
function request()
  counter = counter + 1
  local a = math.random(accounts)
  local b = math.random(accounts - 1)
  if hot and math.random() < 0.9 then a = math.random(10) end
  if b >= a then b = b + 1 end
  if b > accounts then b = 1 end
  if a == b then b = (a % accounts) + 1 end
  local body = string.format('{"transactionId":"w%d-%d-%d","sourceAccountId":"acc%d","destinationAccountId":"acc%d","amount":1}', tid, os.time(), counter, a, b)
  return wrk.format("POST", "/api/v1/transactions/process", {["content-type"]="application/json"}, body)
end
