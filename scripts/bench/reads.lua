-- wrk script: GET a random account of ACCOUNTS (acc1..accN) at one consistency.
-- Arguments (after --): accounts consistency
local accounts = 1000
local consistency = "linearizable"

function init(args)
  accounts = tonumber(args[1]) or accounts
  consistency = args[2] or consistency
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local path = "/api/v1/accounts/acc" .. math.random(1, accounts) .. "?consistency=" .. consistency
  return wrk.format("GET", path)
end
