counter = 0
request = function()
  counter = counter + 1
  local n = (counter * 2654435761) % 1000 + 1
  if counter % 4 == 0 then
    return wrk.format("GET", "/api/buddies?user_id=" .. n)
  end
  return wrk.format("GET", "/api/users/" .. n)
end
